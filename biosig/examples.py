"""`python -m biosig.examples`: the biosig-examples command (biosig.cli.examples), kept at the name it always had."""
if __name__ == "__main__":
    from biosig.cli import examples
    examples()
