# "2026년 12월 9일 수요일 오후 7:00": with the weekday, and 오전/오후 before the time.
# ("D" would give the same full weekday name: Django's Korean catalogue has no short one.)
DATE_FORMAT = "Y년 n월 j일 l"
DATETIME_FORMAT = "Y년 n월 j일 l A g:i"
TIME_FORMAT = "A g:i"
