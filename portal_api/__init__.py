"""HTTP for the city portal and customers, the customer web page, and the bill publisher."""
