"""The marketers' workspace: a web app to edit, preview, approve, publish and roll back."""
