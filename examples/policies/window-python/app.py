"""Component entry of the window policy: the `memory` and `describe` exports."""

from window import Window
from wit_adapter import exports_for

Memory, Describe = exports_for(Window)
