"""The composition root: builds the aiohttp application and runs the command line."""
