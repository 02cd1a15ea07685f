"""Date formats for the site's two languages (``FORMAT_MODULE_PATH``): Django's own,
plus the weekday, which matters when choosing a concert. Only the names set here
differ from Django's locale formats; the rest fall through to them."""
