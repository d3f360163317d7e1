from traceview.cli import app

app()
