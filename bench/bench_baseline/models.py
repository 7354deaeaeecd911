"""One plaintext row per request: what a bare Django contact form would store."""

from django.db import models


class BaselineInquiry(models.Model):
    name = models.CharField(max_length=100)
    phone = models.CharField(max_length=32)
    email = models.CharField(max_length=254)
    company = models.CharField(max_length=200)
    industry = models.CharField(max_length=40)
    position = models.CharField(max_length=100)
    region = models.CharField(max_length=2)
    product = models.CharField(max_length=40)
    submitted_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"BaselineInquiry {self.pk}"
