document.body.textContent = "Cairn: the page is being built";
