"""`RequestKey`: a request_id as the caller sees it and the key the store, the in-process
flight and the markers derive from. Sidecar mode keeps today's keys and markers byte for byte,
so jobs and records made before an upgrade still match; shared mode scopes them per client."""

from __future__ import annotations

from gateway.jobs.exactly_once import SCOPE_SEPARATOR, RequestKey
from gateway.jobs.multi_submit import operation_marker
from gateway.jobs.submit import REQUEST_ID, marker


def test_sidecar_markers_are_unchanged() -> None:
    """Derived from the request_id alone, as before scoping: jobs and records made before an
    upgrade still match. The values are pinned, not recomputed."""
    assert marker("abc") == "#cigw:ba7816bf8f01cfea4141"
    assert operation_marker("abc", 0) == "#cigw:15d0ad2c2718bce7f445"
    sidecar = RequestKey.scoped(None, "abc")
    assert sidecar == RequestKey.unscoped("abc") == RequestKey("abc", "abc")
    assert marker(sidecar.key) == marker("abc")


def test_scoped_keys_differ_per_client_and_from_sidecar_keys() -> None:
    keys = {RequestKey.scoped(name, "abc").key for name in ("alpha-team", "beta-team")}
    assert len(keys) == 2 and "abc" not in keys
    assert {RequestKey.scoped(name, "abc").shown for name in ("alpha-team", "beta-team")} == {"abc"}
    # The separator is no request_id character: the caller's whole id follows the last one,
    # whatever a client's name holds, so no two (client, id) pairs share a key.
    assert REQUEST_ID.fullmatch("a" + SCOPE_SEPARATOR) is None
    assert RequestKey.scoped("a|b", "c").key.rpartition(SCOPE_SEPARATOR) == ("a|b", "|", "c")
