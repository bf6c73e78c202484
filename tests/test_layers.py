"""The house in layers, checked: no import circle among nanoedit's modules (counting imports
inside functions, the kind that hid two circles before), and no module past 700 lines.

The layering itself (which package may import which) is import-linter's contracts in
pyproject.toml, checked by CI; this test needs only grimp, the graph import-linter is built on.
"""

from __future__ import annotations

from pathlib import Path

import grimp

PACKAGE = Path(__file__).resolve().parent.parent / "nanoedit"
MAX_LINES = 700


def _graph() -> grimp.ImportGraph:
    # Every import counts: at the top of a module, inside a function, and under
    # `if TYPE_CHECKING:` (an annotation that needs a module above its own is a concept in the
    # wrong place too).
    return grimp.build_graph("nanoedit", exclude_type_checking_imports=False)


def _circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected sets of more than one module (Tarjan's algorithm, iterative)."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == module:
                        break
                if len(members) > 1:
                    circles.append(sorted(members))
    return circles


def test_no_module_imports_itself_back_through_others() -> None:
    graph = _graph()
    circles = _circles(graph)
    chains = [
        graph.find_shortest_chain(importer=circle[0], imported=circle[1]) for circle in circles
    ]
    assert circles == [], f"import circles: {circles}; for example {chains}"


def test_the_circle_check_finds_a_circle_when_there_is_one() -> None:
    graph = _graph()
    graph.add_import(importer="nanoedit.errors", imported="nanoedit.jobs")
    assert ["nanoedit.errors", "nanoedit.jobs"] in _circles(graph)


def test_no_module_is_longer_than_700_lines() -> None:
    lengths = {
        str(path.relative_to(PACKAGE.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert lengths, "no module found"
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}
