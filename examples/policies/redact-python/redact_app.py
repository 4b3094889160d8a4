"""Component entry of the redacting window policy: the `memory` and `describe` exports.

Built with ``-p . -p ../window-python`` so that the window policy's own modules (`window`,
`wit_adapter`) are imported from there, not copied.
"""

from redact import Redact
from wit_adapter import exports_for

Memory, Describe = exports_for(Redact)
