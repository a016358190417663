"""D1: each environment's migration files against its database's ledger, and applying them."""
