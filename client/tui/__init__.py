"""The person-side terminal client (Textual): ``sealpost chat --profile P``."""
