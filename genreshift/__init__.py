"""genreshift: convert folders of music to another genre."""

__version__ = "0.1.0"
