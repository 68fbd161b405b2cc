"""The drill desk: participant pages, the JSON ack API and signed service-desk webhooks.

:class:`drills.desk.service.DrillDesk` hosts it for a run; :mod:`drills.desk.participants` issues
the tokens; :func:`drills.desk.client.post_ack` is the client side of the JSON API.
"""
