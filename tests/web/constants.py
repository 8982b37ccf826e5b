"""Names shared by the browser-test fixtures and steps."""

STUDY = "S_WEB(TEST)"
SITE_A = "S_SITE_A(TEST)"
SITE_B = "S_SITE_B(TEST)"
QUIET_STUDY = "S_QUIET(TEST)"  # Participate inactive: the register checkbox must be disabled
QUIET_SITE = "S_QUIET_SITE(TEST)"
COORDINATOR = "coord"
