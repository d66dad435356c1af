"""The API v2 error body (splynx §1.2)."""

from flask import jsonify

# Default internal_code per HTTP status, used by fault injection and generic errors.
DEFAULT_CODES = {
    400: ("Bad request", "BAD_REQUEST"),
    401: ("Unauthorized", "UNAUTHORIZED"),
    403: ("Forbidden", "FORBIDDEN"),
    404: ("Not found", "NOT_FOUND"),
    405: ("Method not allowed", "METHOD_NOT_ALLOWED"),
    500: ("Internal server error", "SERVER_ERROR"),
}


class ApiError(Exception):
    """An error answered as ``{"error": {"message", "code", "internal_code"}}``."""

    def __init__(self, status, internal_code=None, message=None):
        default_message, default_code = DEFAULT_CODES.get(status, ("Error", "SERVER_ERROR"))
        super().__init__(message or default_message)
        self.status = status
        self.internal_code = internal_code or default_code
        self.message = message or default_message


def error_response(status, internal_code=None, message=None):
    """Build the Flask response for an error."""
    err = ApiError(status, internal_code, message)
    response = jsonify({"error": {"message": err.message, "code": err.status,
                                  "internal_code": err.internal_code}})
    response.status_code = err.status
    return response
