"""Pure rules of the product: state machine, validation, money, tokens. No I/O here."""
