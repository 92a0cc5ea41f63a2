"""Modbus meters: register maps as data, a client for TCP, RTU and RTU over TCP, and a simulator.

Modules, one concern each:
    datatypes   registers <-> numbers (u16 ... f64, word order); no I/O
    maps        register maps loaded and validated from fixtures/registermaps/
    plan        a map's registers grouped into as few read requests as allowed
    values      a response's bytes -> exact values (one struct call; rounding, range and NaN checks)
    snapshots   exact values -> snapshot Readings, each field checked once per read
    responses   pymodbus read responses that keep the register bytes as they came
    transport   pymodbus clients per URL scheme, per-line locks, error translation
    client      read_modbus_meter: one full read of one meter
    registerbank, faults, simulator   the simulated fleet on pymodbus's server
    nullmodem   two pseudo-terminals bridged, an RTU line without hardware
"""
