"""Pages of the events app: catalogue, waiting room, staff rush dashboard."""
