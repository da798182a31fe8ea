"""All SQL of the product. Repositories take the caller's session and never commit."""
