"""SMS providers: one module each.

Each module owns everything about its provider: how a message is submitted,
how its delivery reports look and are verified, and which of its errors are
temporary or permanent. The rest of the gateway sees the ``Provider`` and
``ReportSource`` ports of ``chalicelib/ports.py`` and the gateway's own
``SubmitResult`` and ``DeliveryReport``. The composition root picks the
modules to build from the settings.
"""
