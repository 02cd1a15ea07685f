# "Wed, Dec. 9, 2026, 7 p.m."
DATE_FORMAT = "D, N j, Y"
DATETIME_FORMAT = "D, N j, Y, P"
