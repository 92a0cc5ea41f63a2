"""`amr store`: look after the measurement store's tables."""

from __future__ import annotations

import typer
from rich.table import Table as RichTable

from amr.context import console, handle_errors, measurements

app = typer.Typer(no_args_is_help=True)


@app.command("info")
@handle_errors
def info() -> None:
    """List the store's tables with their manifest version, partitions and files.

    Example: amr store info
    """
    store = measurements()
    table = RichTable("table", "version", "partitions", "files")
    if store.root.exists():
        for path in sorted(p for p in store.root.iterdir() if p.is_dir()):
            manifest = store.table(path.name).manifest()
            files = sum(len(v) for v in manifest.partitions.values())
            table.add_row(path.name, str(manifest.version), str(len(manifest.partitions)), str(files))
    console.print(table)


@app.command("repair")
@handle_errors
def repair(name: str = typer.Argument(..., help="Table whose manifest to rebuild.")) -> None:
    """Rebuild a table's manifest from its files (the newest file of each partition wins).

    Example: amr store repair readings
    """
    version = measurements().table(name).repair()
    console.print(f"rebuilt the manifest of {name}: version {version}")


@app.command("vacuum")
@handle_errors
def vacuum(
    name: str = typer.Argument(..., help="Table to clean."),
    older_than: float = typer.Option(3600.0, help="Keep dead files younger than this many seconds."),
) -> None:
    """Delete files no manifest names any more, once no reader can still use them.

    Example: amr store vacuum readings --older-than 3600
    """
    removed = measurements().table(name).vacuum(older_than_s=older_than)
    console.print(f"removed {removed} dead file(s) from {name}")
