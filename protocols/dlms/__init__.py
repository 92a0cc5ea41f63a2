"""DLMS/COSEM (IEC 62056): framing, associations, meter sessions and a meter simulator.

Protocol cores (`wrapper`, `hdlc`, `axdr`, `cosem_time`, `ciphering`, `association`) do no
I/O; only `transport` and `serial_line` touch sockets, serial ports and the event loop.
"""
