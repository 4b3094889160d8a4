"""The host interface `window.Window` expects, over the bindings componentize-py generates.

Imported only inside the component (the bindings exist only there). `exports_for(policy)`
gives the classes componentize-py looks for in the app module, `Memory` and `Describe`, each
call forwarded to one policy object.
"""

from types import SimpleNamespace

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import config, log, store, types

#: The WIT types, under the names window.py uses (those componentize-py generates).
WIT = SimpleNamespace(**{**vars(types), **vars(store), "Level": log.Level, "Ok": Ok, "Err": Err})


class Imports:
    """The world's imports as `window.Window`'s host: settings, store, log."""

    settings = staticmethod(config.get_settings)
    read_range = staticmethod(store.read_range)
    apply = staticmethod(store.apply)
    log = staticmethod(log.log)


def exports_for(policy_class):
    """The `Memory` and `Describe` export classes, serving one `policy_class(Imports(), WIT)`.

    An error result is raised as `Err(memory-error)`, which the bindings turn into the WIT
    `err`; any other exception is a bug and traps (the host reports `policy-failed`).
    """
    policy = policy_class(Imports(), WIT)

    def reported(call):
        """`call()`, with an unexpected exception announced before it traps.

        The host reports a trap as `policy-failed`; a log line at error level starting with
        `panicked` is what it quotes as the reason. Without it the reason is lost: printing
        the traceback needs a filesystem, which a policy does not have.
        """
        try:
            return call()
        except Err:
            raise
        except BaseException as error:
            log.log(log.Level.ERROR, f"panicked: {type(error).__name__}: {error}")
            raise

    class Memory(exports.Memory):
        def get_context(self, session_id):
            return reported(lambda: policy.get_context(session_id))

        def add_message(self, session_id, message):
            return reported(lambda: policy.add_message(session_id, message))

        def add_messages(self, session_id, messages):
            return reported(lambda: policy.add_messages(session_id, messages))

        def add_and_get_context(self, session_id, messages):
            return reported(lambda: policy.add_and_get_context(session_id, messages))

        def clear(self, session_id):
            return reported(lambda: policy.clear(session_id))

    class Describe(exports.Describe):
        def settings(self):
            return reported(policy.setting_specs)

    return Memory, Describe
