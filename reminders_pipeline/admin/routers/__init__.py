"""The admin API's routes, one router per resource; thin: they call the services."""
