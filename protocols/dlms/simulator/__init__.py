"""A DLMS/COSEM meter simulator in the server role, built on dlms-cosem's APDU classes."""
