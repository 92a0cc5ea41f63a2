"""A covering index for the portal's hottest query: the meters of a customer.

`meters_customer` (v0001) finds the rows; this one answers from the index alone, which
saves a table lookup per request on a registry of millions of meters.
"""

STATEMENTS = [
    "CREATE INDEX portal_meters_by_customer ON meters (customer_code, meter_id)",
]
