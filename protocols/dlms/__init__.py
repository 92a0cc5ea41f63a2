"""DLMS/COSEM (IEC 62056): framing, associations, meter sessions and a meter simulator.

Protocol cores (`wrapper`, `hdlc`, `axdr`, `apdu`, `cosem_time`, `ciphering`, `association`,
`reading_columns`) do no I/O; only `line`, `transport` and `serial_line` touch sockets,
serial ports and the event loop.
"""
