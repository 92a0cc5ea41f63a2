"""`amr cluster`: a Dask cluster to run the pipeline's per-partition work on."""

from __future__ import annotations

import typer
from rich.table import Table as RichTable

from amr.context import console, handle_errors, print_json
from core.executor import cluster_workers, run_local_cluster

app = typer.Typer(no_args_is_help=True)


@app.command("up")
@handle_errors
def up(
    workers: int = typer.Option(2, help="Worker processes to start (0: a scheduler alone)."),
    threads: int = typer.Option(1, help="Threads per worker (1 suits Polars tasks, which use cores)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 lets other machines join."),
    port: int = typer.Option(8786, help="Scheduler port (0 picks a free one)."),
) -> None:
    """Start a Dask scheduler and workers on this machine, for trying the cluster path out.

    Runs until Ctrl-C. Point commands at it with AMR_CLUSTER=<address> (or --cluster),
    and add machines with `dask worker <address>` on each.

    Example: amr cluster up --workers 2 --port 8786
    """

    def ready(address: str) -> None:
        console.print(f"Dask scheduler at [bold]{address}[/] with {workers} worker(s) x {threads} thread(s)")
        console.print(f"use it with: export AMR_CLUSTER={address}   (Ctrl-C stops the cluster)")

    run_local_cluster(workers=workers, threads=threads, host=host, port=port, on_ready=ready)


@app.command("status")
@handle_errors
def status(
    cluster: str = typer.Option(None, "--cluster", help="Scheduler address; default AMR_CLUSTER."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the workers a Dask scheduler has now.

    Example: amr cluster status --cluster tcp://127.0.0.1:8786
    """
    found = cluster_workers(cluster)
    if as_json:
        print_json([w.__dict__ for w in found])
        return
    table = RichTable("worker", "name", "threads", "memory")
    for worker in found:
        memory = f"{worker.memory_limit / 2**30:.1f} GiB" if worker.memory_limit else "unlimited"
        table.add_row(worker.address, worker.name, str(worker.threads), memory)
    console.print(table)
    console.print(f"{len(found)} worker(s), {sum(w.threads for w in found)} thread(s)")
