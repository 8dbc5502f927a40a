"""Template: limits and defaults the page needs at start-up, with no heavy import (the hub builds every
page when it starts; torch alone would cost a second)."""

MIN_PATCH = 2
MAX_PATCH = 256
DEFAULT_PATCH = 32
