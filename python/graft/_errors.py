"""graft.Error: a failure of libgraft, with its one-line message."""

STATUS_NAMES = {
    -1: "ERROR", -2: "ENOTFOUND", -3: "EFORMAT", -4: "ECORRUPT", -5: "ELIMIT", -6: "ESHAPE",
    -7: "ERULE", -8: "EIO", -9: "ENOMEM", -10: "EUNSAFE", -11: "EPLAN", -12: "ECANCELED",
}


class Error(Exception):
    """A libgraft failure.  str(e) is the library's one-line message (file,
    then tensor, rule or offset, then the problem); e.status is its negative
    graft_status code and e.code its name ("ECORRUPT", "ERULE", ...)."""

    def __init__(self, message, status=-1):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = STATUS_NAMES.get(status, "ERROR")


class PlanError(Error):
    """graft.apply refused an incomplete plan (nothing was written); e.plan is
    the plan (graft.Plan) with its missing tensors and problems."""

    def __init__(self, message, status=-11, plan=None):
        super().__init__(message, status)
        self.plan = plan
