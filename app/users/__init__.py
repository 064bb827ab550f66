"""Dashboard users (analysts and admins), their passwords and their sign-in sessions."""
