"""Contracts every room shares: the Reading, OBIS codes, meter URLs, configuration, the stores."""
