from django.dispatch import Signal

# Sent inside the confirming transaction; receivers act through transaction.on_commit.
booking_confirmed = Signal()  # kwargs: booking_id
booking_cancelled = Signal()  # kwargs: booking_id
