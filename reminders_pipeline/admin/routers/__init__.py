"""The admin API's routes, one module per concern; thin: they call the services."""
