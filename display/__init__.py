"""Secretary console, hall screen, stream overlay and public pages over Flask-SocketIO (later issue)."""
