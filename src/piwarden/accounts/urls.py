from django.urls import path

from piwarden.accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.home, name="account"),
    path("sign-up/", views.sign_up, name="sign_up"),
    path("sign-up/sent/", views.sign_up_sent, name="sign_up_sent"),
    path("verify/", views.verify, name="verify"),
    path("sign-in/", views.sign_in, name="sign_in"),
    path("sign-in/code/", views.code, name="code"),
    path("sign-out/", views.sign_out, name="sign_out"),
    path("password/", views.change_password, name="password"),
    path("reset/", views.reset, name="reset"),
    path("reset/sent/", views.reset_sent, name="reset_sent"),
    path("reset/new/", views.reset_new, name="reset_new"),
    path("authenticator/", views.totp, name="totp"),
    path("authenticator/remove/", views.totp_remove, name="totp_remove"),
    path("cancel/", views.cancel, name="cancel"),
    path("cancelled/", views.cancelled, name="cancelled"),
]
