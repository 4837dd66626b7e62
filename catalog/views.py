from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def track_list(request: HttpRequest) -> HttpResponse:
    return render(request, "catalog/track_list.html", {"tracks": [], "total": 0})
