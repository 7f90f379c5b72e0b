"""``valueflow theories``: browse the value theories, values, anchors; check theory files."""

from __future__ import annotations

from typing import Any

import click

from valueflow.cli._common import echo_json, json_option

__all__ = ["theories"]


def _node_json(node: Any, *, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": node.id, "theory": node.theory, "node": node.node, "name": node.name,
        "level": node.level, "parents": list(node.parents), "aliases": list(node.aliases),
        "definition": node.definition,
    }
    if full or node.judge_definition:
        out["judge_definition"] = node.judge_definition
        out["phrasings"] = {str(k): v for k, v in sorted(node.phrasings.items())}
    return out


def _console() -> Any:
    from rich.console import Console

    return Console(soft_wrap=False, highlight=False)


@click.group("theories")
def theories() -> None:
    """Browse the value theories (Schwartz, MFT, Ross, rights) and your own theory files."""


@theories.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """List the theories with their node counts, and the 32 evaluation values."""
    from valueflow.theories import get_registry

    reg = get_registry()
    evals = reg.evaluation_values()
    if as_json:
        echo_json({
            "theories": [
                {"key": t.key, "name": t.name, "label": t.label, "aliases": list(t.aliases),
                 "n_nodes": len(t), "depth": t.depth,
                 "nodes_per_level": {str(lvl): len(t.at_level(lvl))
                                     for lvl in range(1, t.depth + 1)},
                 "source": t.source}
                for t in reg
            ],
            "evaluation_values": [{"id": n.id, "name": n.name, "theory": n.theory} for n in evals],
        })
        return
    from rich.table import Table

    table = Table(title="Value theories")
    for col in ("key", "aliases", "name", "label", "nodes", "per level"):
        table.add_column(col)
    for t in reg:
        per_level = " / ".join(str(len(t.at_level(lvl))) for lvl in range(1, t.depth + 1))
        table.add_row(t.key, ", ".join(t.aliases), t.name, t.label, str(len(t)), per_level)
    con = _console()
    con.print(table)
    con.print(f"\n[bold]{len(evals)} evaluation values[/bold] (steered and evaluated):")
    for t in reg:
        ids = [n.node for n in evals if n.theory == t.key]
        if ids:
            con.print(f"  {t.key}: {', '.join(ids)}")


@theories.command("show")
@click.argument("theory")
@json_option
def show_cmd(theory: str, as_json: bool) -> None:
    """Show THEORY (a key or alias, e.g. pvq) as a tree of its nodes."""
    from valueflow.theories import get_registry

    t = get_registry().theory(theory)
    if as_json:
        echo_json({"key": t.key, "name": t.name, "label": t.label, "aliases": list(t.aliases),
                   "description": t.description, "source": t.source,
                   "nodes": [_node_json(n) for n in t]})
        return
    from rich.tree import Tree

    evals = {n.id for n in get_registry().evaluation_values()}
    tree = Tree(f"[bold]{t.name}[/bold] ({t.key}; {len(t)} {t.label.lower()} nodes)")

    def add(branch: Any, node: Any) -> None:
        mark = " [green]*[/green]" if node.id in evals else ""
        extra = ""
        if len(node.parents) > 1:
            extra = " [dim](also under " + ", ".join(
                p.split(":", 1)[1] for p in node.parents[1:]) + ")[/dim]"
        sub = branch.add(f"{node.node}{mark} [dim]{node.name}[/dim]{extra}")
        for child in t.children(node.id):
            if child.parents[0] == node.id:  # show a multi-parent node once, under its first parent
                add(sub, child)

    for root in t.roots():
        add(tree, root)
    con = _console()
    con.print(tree)
    if any(n.id in evals for n in t):
        con.print("[green]*[/green] evaluation value")


@theories.command("value")
@click.argument("name")
@json_option
def value_cmd(name: str, as_json: bool) -> None:
    """Show one value: NAME is an id, name or alias (care/harm, pvq:benevolence, ...)."""
    from valueflow.theories import get_registry

    reg = get_registry()
    node = reg.resolve(name)
    t = reg.theory_of(node)
    anchors = reg.anchors_for(node)
    if as_json:
        out = _node_json(node, full=True)
        out["path"] = [n.id for n in t.path(node.id)]
        out["children"] = [n.id for n in t.children(node.id)]
        out["anchors"] = [a.id for a in anchors]
        echo_json(out)
        return
    con = _console()
    con.print(f"[bold]{node.name}[/bold]  {node.id}  ({t.label.lower()}, level {node.level} "
              f"of {t.name})")
    con.print(f"Path: {' > '.join(n.name for n in t.path(node.id))}")
    if len(node.parents) > 1:
        con.print(f"Parents: {', '.join(node.parents)}")
    kids = t.children(node.id)
    if kids:
        con.print(f"Children: {', '.join(n.node for n in kids)}")
    if node.aliases:
        con.print(f"Aliases: {', '.join(node.aliases)}")
    con.print(f"\n[bold]Definition[/bold]\n{node.definition}")
    if node.judge_definition:
        con.print(f"\n[bold]Judge definition[/bold]\n{node.judge_definition}")
    if node.phrasings:
        con.print("\n[bold]Steering phrasings[/bold]")
        for lvl in sorted(node.phrasings):
            con.print(f"  {lvl:>2}: {node.phrasings[lvl]}")
    if anchors:
        con.print(f"\n[bold]Anchors[/bold]: {', '.join(a.id for a in anchors)}")


@theories.command("anchors")
@click.option("--value", "value", default=None, help="Only the anchors this value belongs to.")
@json_option
def anchors_cmd(value: str | None, as_json: bool) -> None:
    """List the cross-theory anchors (shared concepts linking nodes of several theories)."""
    from valueflow.theories import get_registry

    reg = get_registry()
    anchors = reg.anchors_for(value) if value else list(reg.anchors)
    if as_json:
        echo_json([{"id": a.id, "name": a.name, "description": a.description,
                    "members": list(a.members), "theories": list(a.theories)} for a in anchors])
        return
    from rich.table import Table

    table = Table(title=f"{len(anchors)} cross-theory anchors")
    for col in ("id", "description", "members"):
        table.add_column(col, overflow="fold")
    for a in anchors:
        table.add_row(a.id, a.description, "\n".join(a.members))
    _console().print(table)


_VALIDATE_HELP = """Check a theory file of your own (YAML or JSON) and summarise it.

\b
Format:
  key: my_theory         # snake_case; not a built-in key or alias
  name: My theory
  label: Value           # what one node is called
  aliases: [mine]        # optional
  nodes:
    - id: honesty        # snake_case, unique
      name: Honesty      # optional display name
      definition: ...    # required, non-empty
      parents: []        # node ids of the same theory; no cycles
      aliases: []        # optional
      judge_definition: ...              # optional
      phrasings: {-2: ..., -1: ..., 0: ..., 1: ..., 2: ...}  # optional, all five
  anchors:               # optional; members are canonical ids of >= 2 theories
    - {id: truth, name: Truth, description: ..., members: [my_theory:honesty, ross:fidelity]}

Use it with --theory-file FILE or $VALUEFLOW_THEORY_FILES.
"""


@theories.command("validate", help=_VALIDATE_HELP)
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def validate_cmd(file: str, as_json: bool) -> None:
    from valueflow.theories import validate_theory_file

    t = validate_theory_file(file)
    summary = {"file": file, "valid": True, "key": t.key, "name": t.name, "n_nodes": len(t),
               "depth": t.depth, "n_anchors": len(t.anchors),
               "n_with_phrasings": sum(1 for n in t if n.is_evaluation_ready)}
    if as_json:
        echo_json(summary)
        return
    click.echo(f"{file}: OK — theory {t.key!r} ({t.name}), {len(t)} nodes in {t.depth} "
               f"level(s), {len(t.anchors)} anchor(s), {summary['n_with_phrasings']} node(s) "
               "with judge definition and phrasings.")
