"""Docket's benchmarks (`./run bench`): lifecycle vs a bare workflow, the audit log, worker
memory and Update failures under load. Figures and method: docs/performance.md."""
