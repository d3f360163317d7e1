"""One module per report format of `traceview analyze`: terminal, JSON, HTML."""
