"""Version of mmchansearch."""
__version__ = '0.1.0'
