"""(being built)"""

from rest_framework.views import APIView


class RushControlApi(APIView):
    pass
