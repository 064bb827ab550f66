"""`countersign demo`: a realistic week of email, tickets and outcomes for a first look."""
