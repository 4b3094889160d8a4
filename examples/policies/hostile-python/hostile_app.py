"""Component entry of the hostile policy (see `hostile.py`).

Built with ``-p . -p ../window-python``, like the redacting policy.
"""

from hostile import Hostile
from wit_adapter import exports_for

Memory, Describe = exports_for(Hostile)
