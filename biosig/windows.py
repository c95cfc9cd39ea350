"""`python -m biosig.windows`: the biosig-windows command (biosig.cli.windows), kept at the name it always had."""
if __name__ == "__main__":
    from biosig.cli import windows
    windows()
