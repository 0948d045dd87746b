"""User-facing error types.

Every error a user can cause by bad input has one type here. Tools print the
message of these errors without a traceback, so each message names the
offending key or value and says what would be valid.
"""


class ChannelSearchError(Exception):
    """Base class of all user errors raised by mmchansearch."""


class ChannelConfigError(ChannelSearchError):
    """A channel_cfg file or dict is malformed or does not fit the model."""


class BudgetError(ChannelSearchError):
    """A resource budget (FLOPs, params, latency) cannot be met."""


class CheckpointMismatchError(ChannelSearchError):
    """A checkpoint does not match the model built from the config."""


class ConfigError(ChannelSearchError):
    """An algorithm or search config holds an invalid value."""


class LatencyTableError(ChannelSearchError):
    """A latency lookup table is missing, malformed, lacks an op or was
    measured on another device."""


class NonFiniteError(ChannelSearchError):
    """A search met a NaN or infinite loss, score, FLOPs Utilization Ratio
    or architecture parameter (a diverged or broken network)."""
