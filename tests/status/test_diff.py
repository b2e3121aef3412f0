"""The pure diff: what changes produce which events, in which order; login data it cannot trust is skipped."""

from __future__ import annotations

from tcxhooks.monitor.status.diff import NAMES, diff
from tcxhooks.monitor.status.view import DirectoryView, ExtensionView, QueueView


def ext(number: str, profile: str = "Available", login: bool = True, name: str = "") -> ExtensionView:
    return ExtensionView(number, name or f"User {number}", f"{number}@example.com", profile, login)


def view(extensions: list[ExtensionView], queues: list[QueueView], known: bool = True) -> DirectoryView:
    return DirectoryView({e.number: e for e in extensions}, {q.number: q for q in queues}, known, "v1")


def names(changes: list) -> list[tuple[str, str, str]]:
    return [(NAMES[c.type], c.user, c.queue) for c in changes]


def test_identical_views_and_name_only_changes_give_nothing() -> None:
    a = view([ext("101")], [QueueView("800", "Sales", ("101",), frozenset({"101"}))])
    b = view([ext("101", name="Renamed")], [QueueView("800", "Renamed queue", ("101",), frozenset({"101"}))])
    assert diff(a, a) == []
    assert diff(a, b) == []


def test_numeric_extension_order_and_order_within_one_extension() -> None:
    a = view(
        [ext("9"), ext("100"), ext("1000")],
        [QueueView("800", "S", ("100",), frozenset({"100"})), QueueView("90", "T", (), frozenset())],
    )
    b = view(
        [ext("9", "Away"), ext("100", "Away", login=False), ext("20")],
        [QueueView("800", "S", (), frozenset()), QueueView("90", "T", ("100", "20"), frozenset({"20"}))],
    )
    assert names(diff(a, b)) == [
        ("forwarding", "9", ""),
        ("extensionadded", "20", ""),
        ("agentadded", "20", "90"),
        ("queuestatus", "20", "90"),
        ("forwarding", "100", ""),
        ("queuelogin", "100", ""),
        ("agentadded", "100", "90"),
        ("agentremoved", "100", "800"),
        ("extensiondeleted", "1000", ""),
    ]


def test_deleted_extension_leaves_its_queues_before_it_is_deleted() -> None:
    a = view([ext("101")], [QueueView("800", "Sales", ("101",), frozenset({"101"}))])
    b = view([], [QueueView("800", "Sales", (), frozenset())])
    changes = diff(a, b)
    assert names(changes) == [("agentremoved", "101", "800"), ("extensiondeleted", "101", "")]
    assert changes[0].name == "User 101" and changes[0].queue_name == "Sales"


def test_deleted_queue_removes_its_agents() -> None:
    a = view([ext("101")], [QueueView("800", "Sales", ("101",), frozenset({"101"}))])
    b = view([ext("101")], [])
    assert names(diff(a, b)) == [("agentremoved", "101", "800")]


def test_queue_logins_are_not_diffed_against_a_view_that_did_not_know_them() -> None:
    unknown = view([ext("101")], [QueueView("800", "Sales", ("101",), frozenset())], known=False)
    known = view([ext("101")], [QueueView("800", "Sales", ("101",), frozenset({"101"}))])
    assert diff(unknown, known) == []
    assert diff(known, unknown) == []
    back_in = view([ext("101")], [QueueView("800", "Sales", ("101",), frozenset())])
    change = diff(known, back_in)[0]
    assert (NAMES[change.type], change.status, change.previous) == ("queuestatus", "out", "in")


def test_view_round_trips_through_json() -> None:
    a = view(
        [ext("101", "Out of office", login=False)], [QueueView("800", "Sales", ("101", "102"), frozenset({"102"}))]
    )
    again = DirectoryView.from_json(a.to_json(), "other")
    assert again == a and again.view_id == "other"
