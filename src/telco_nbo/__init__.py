"""telco-nbo: telecom retention and cross-sell, from data to decisions.

Importing the package has no side effects: nothing is created on disk and no tracking URI is set
until a function is called.
"""

__version__ = "0.1.0"
