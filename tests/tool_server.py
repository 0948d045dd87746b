"""Runs ``python tools/<script> args...`` for the tests, fast.

Most of a tool's start is importing torch, mmengine and mmpretrain (3-6 s
on the CI machine, more than many tools then run). This server imports
those libraries once and forks a child per request: the child sets up what
a fresh ``python SCRIPT ARGS`` or ``python -m MODULE ARGS`` would have
(working directory, environment, ``sys.argv``, ``sys.path[0]``, stdin from
/dev/null, stdout and stderr to files), runs the script or module as
``__main__`` and exits with the code Python would give (``sys.exit``'s, 1
with the traceback on stderr for an uncaught
exception). The server never runs a torch operation, so no thread pool
exists when it forks. It does not import the toolbox itself: each child
imports it the way the tool does, so a tool that forgets an import still
fails here.

Protocol (one request at a time, JSON lines): the client writes
``{"args", "cwd", "env", "stdout", "stderr"}`` on the server's stdin; the
server answers ``{"pid"}`` when the child started and ``{"returncode"}``
when it ended.

``tests/conftest.py`` starts one server per test session; setting
``MMCHANSEARCH_TEST_FORK=0`` runs every tool as a plain subprocess instead.
"""
import json
import os
import sys


def _preload() -> None:
    """The libraries every tool imports (not this package)."""
    import mmengine.runner  # noqa: F401
    import mmpretrain.models  # noqa: F401
    import torch  # noqa: F401


def _child(request: dict) -> None:
    """Becomes the tool: never returns."""
    code = 1
    try:
        os.chdir(request['cwd'])
        os.environ.clear()
        os.environ.update(request['env'])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, request['stdout']), (2, request['stderr'])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(target, fd)
            os.close(target)
        args = list(request['args'])
        module = args[1] if args[0] == '-m' else None
        # what `python SCRIPT` (its folder) or `python -m MODULE` (the
        # working directory) puts first on sys.path, then PYTHONPATH
        extra = [p for p in request['env'].get('PYTHONPATH', '').split(
            os.pathsep) if p]
        first = os.getcwd() if module else os.path.dirname(
            os.path.abspath(args[0]))
        sys.path[:] = [first, *extra,
                       *(p for p in sys.path[1:] if p not in extra)]
        import runpy
        try:
            if module:
                sys.argv = [args[1], *args[2:]]  # run_module sets argv[0]
                runpy.run_module(module, run_name='__main__', alter_sys=True)
            else:
                sys.argv = args
                runpy.run_path(os.path.abspath(args[0]), run_name='__main__')
            code = 0
        except SystemExit as exit_:
            if exit_.code is None:
                code = 0
            elif isinstance(exit_.code, int):
                code = exit_.code
            else:
                print(exit_.code, file=sys.stderr)
                code = 1
        except BaseException:  # what Python prints for an uncaught one
            import traceback
            traceback.print_exc()
            code = 1
        import atexit
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def main() -> None:
    _preload()
    reply = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        reply.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        reply.write(json.dumps(dict(pid=pid)) + '\n')
        reply.flush()
        _, status = os.waitpid(pid, 0)
        reply.write(json.dumps(dict(
            returncode=os.waitstatus_to_exitcode(status))) + '\n')
        reply.flush()


if __name__ == '__main__':
    main()
