"""(being built)"""

from rest_framework.views import APIView


class QueueApi(APIView):
    pass
