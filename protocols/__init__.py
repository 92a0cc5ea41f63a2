"""Talking to meters: DLMS/COSEM and Modbus over TCP and serial lines, and simulators."""
